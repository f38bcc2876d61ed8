"""mic.hub"""
