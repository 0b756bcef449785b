"""ri2fl.report"""
