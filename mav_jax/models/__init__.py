"""Networks other than the shared U-Net: the I3D feature network for FVD (CLIP and the prior to come)."""
