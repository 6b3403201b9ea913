"""GAN Lab: train, compare and understand Generative Adversarial Networks."""

__version__ = "0.1.0"
