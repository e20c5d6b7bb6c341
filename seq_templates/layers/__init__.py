"""Layer factories and custom layers shared by the templates."""
