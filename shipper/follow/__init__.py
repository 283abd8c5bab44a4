"""Following one container's log: the Follower and the parts it is made of."""

from shipper.follow.follower import Follower

__all__ = ["Follower"]
