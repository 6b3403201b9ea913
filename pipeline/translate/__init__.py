"""Task translate: paired image-to-image translation (pix2pix) on the lab's image datasets.

`problems` builds each training pair from one image (a degraded input, the image as the target),
`networks` holds the U-Net generator and the PatchGAN discriminator, `train` the training loop,
`metrics` what shows that a reconstruction loss blurs and an adversarial one commits, and `stages`
what the train, sample and evaluate stages run for this task.
"""
