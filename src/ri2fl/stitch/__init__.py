"""ri2fl.stitch"""
