"""tfvamp: VAEs with a VampPrior (Tomczak & Welling, AISTATS 2018) in TensorFlow/Keras."""
__version__ = "0.1.0"
