"""nlprec: word embeddings, sequence models and recommenders on one PyTorch trainer."""

__version__ = "0.1.0"
