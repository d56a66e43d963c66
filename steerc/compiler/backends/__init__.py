"""steerc.compiler.backends"""
