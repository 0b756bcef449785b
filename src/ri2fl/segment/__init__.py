"""ri2fl.segment"""
