"""ri2fl.simulate"""
