"""ri2fl.napari"""
