"""steerc.compiler"""
