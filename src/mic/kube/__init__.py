"""mic.kube"""
