"""nlprec.models."""
