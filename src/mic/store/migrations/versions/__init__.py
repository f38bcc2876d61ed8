"""Migration revisions, oldest first: r0001_initial.py, r0002_….py, …"""
