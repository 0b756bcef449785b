"""ri2fl.profile"""
