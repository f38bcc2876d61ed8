"""mic.store"""
