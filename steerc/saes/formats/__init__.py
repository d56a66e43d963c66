"""steerc.saes.formats"""
