"""ri2fl.data"""
