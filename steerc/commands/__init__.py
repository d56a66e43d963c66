"""steerc.commands"""
