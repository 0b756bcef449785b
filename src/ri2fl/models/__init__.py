"""ri2fl.models"""
