"""FirstSpike gateware (Amaranth): the neuron array, its memories and host interface.

Built from :mod:`firstspike.sw`'s definitions (:class:`~firstspike.sw.params.CoreParams`,
:mod:`~firstspike.sw.arith`); sw never imports hw.
"""
