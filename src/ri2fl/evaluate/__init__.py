"""ri2fl.evaluate"""
