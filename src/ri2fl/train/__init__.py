"""ri2fl.train"""
