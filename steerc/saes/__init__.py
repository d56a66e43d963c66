"""steerc.saes"""
