"""steerc.catalogue"""
