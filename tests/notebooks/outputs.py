"""What the notebook tests read from an executed notebook: its outputs as text, its Plotly figures."""

from __future__ import annotations


def outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(str(output.get("text", "")))
            parts += [str(value) for key, value in output.get("data", {}).items() if key.startswith("text/")]
    return "\n".join(parts)


def figure_titles(notebook) -> list[str]:
    return [output["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"] for cell in notebook.cells
            for output in cell.get("outputs", []) if "application/vnd.plotly.v1+json" in output.get("data", {})]
