"""ri2fl.batch"""
