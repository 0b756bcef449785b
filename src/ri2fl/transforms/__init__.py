"""ri2fl.transforms"""
