"""mic.service"""
