"""vgdrift: is this node's cached LVM metadata still current?"""

__version__ = "0.1.0"
