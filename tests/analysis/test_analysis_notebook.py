"""analysis/explore.ipynb runs top to bottom on the fabricated sweep and draws every figure."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "analysis" / "explore.ipynb"


def test_notebook_executes_on_the_fabricated_sweep(planted, monkeypatch):
    monkeypatch.setenv("PREFOPT_SWEEP", str(planted.root))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == 5  # overfitting, frontier, heatmaps, proxy-gold, log-probs
    data = [output.get("data", {}) for output in outputs]
    markdown = [item["text/markdown"] for item in data if "text/markdown" in item]
    assert any("**" in text and "| ipo |" in text for text in markdown)
