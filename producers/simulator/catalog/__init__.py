"""What the simulated shop is made of, as typed records and no behaviour.

* :mod:`.shop`: the apps, the environments each runs in, how often they deploy and fail,
  their feature flags and the people and bots that change them.
* :mod:`.features`: each app's endpoints (route, popularity, latency, 4xx share).
* :mod:`.error_sites`: the code sites that raise, ranked most to least frequent.
* :mod:`.libraries`: the library and framework frames beneath an app's own frames.

The modules beside this package turn these records into traffic.
"""
