"""Debiasing in sparse-autoencoder latent spaces (SEM) and the sparse autoencoders themselves."""
