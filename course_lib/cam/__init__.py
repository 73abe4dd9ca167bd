"""Class activation maps (chapter 04): CAM, Grad-CAM and its variants, Guided Backprop."""

__all__: list[str] = []
