"""Publishing: pushing verified images, the release record and notes."""
