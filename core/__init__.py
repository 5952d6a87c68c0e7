"""Everything that is not UI: data, models, training, evaluation, run directories. Never imports streamlit."""
