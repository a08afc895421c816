from buildtool.engine.prune import plan_prune


def test_only_superseded_content_hash_tags_are_removed():
    current = {"buildtool/debian12.sys:h-" + "a" * 20}
    tags = [
        "buildtool/debian12.sys:h-" + "a" * 20,  # current
        "buildtool/debian12.sys:h-" + "b" * 20,  # superseded
        "buildtool/base-debian12:1234567890ab",  # a base: never pruned here
        "buildtool/openmpi4.1.4-debian12:latest",  # not a content-hash tag
    ]
    plan = plan_prune(tags, current)
    assert plan.remove == ("buildtool/debian12.sys:h-" + "b" * 20,)
    assert plan.keep == ("buildtool/debian12.sys:h-" + "a" * 20,)
