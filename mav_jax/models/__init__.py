"""Networks other than the shared U-Net: CLIP (and a frozen CLIP export for conditioning), the
diffusion prior, the I3D feature network for FVD, CLIP's tokenizer and weight converters."""
