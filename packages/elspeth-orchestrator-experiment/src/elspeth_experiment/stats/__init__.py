"""Pure statistics used by the experiment plugins: plain sequences of floats in, plain numbers out.

scipy and numpy are imported inside the functions that need them, so importing these modules is cheap.
"""
