"""steerc.grammar"""
