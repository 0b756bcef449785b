"""ri2fl.infer"""
