"""steerc.arch"""
