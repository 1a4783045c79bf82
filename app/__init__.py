"""The operator's surfaces: the `workbench` CLI, the Streamlit app and its shared pieces."""
