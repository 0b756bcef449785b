"""ri2fl.preprocess"""
