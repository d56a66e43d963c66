"""steerc.runtime"""
