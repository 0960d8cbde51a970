// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The lab API's patches and selectors against what kubectl sends, case by case. */
#include "harness.h"

#include "agent/lab/api.h"
#include "agent/lab/patch.h"

static void same(json_t *got, const char *want)
{
	json_t *w = json_loads(want, 0, NULL);
	char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);

	assert_non_null(w);
	if (!got || !json_equal(got, w))
		fail_msg("got %s, want %s", g ? g : "NULL", want);
	free(g);
	json_decref(w);
	json_decref(got);
}

#define J(s) json_loads(s, 0, NULL)

static char err[256];

/* each applies a patch given as text and frees it */
static json_t *MP(json_t *doc, const char *patch)
{
	json_t *p = J(patch), *out = merge_patch(doc, p);

	json_decref(p);
	return out;
}

static json_t *SP(json_t *doc, const char *patch)
{
	json_t *p = J(patch), *out = strategic_patch(doc, p, err, sizeof(err));

	json_decref(p);
	return out;
}

static json_t *JP(json_t *doc, const char *patch)
{
	json_t *p = J(patch), *out = json_patch(doc, p, err, sizeof(err));

	json_decref(p);
	return out;
}

static void test_merge(void **state)
{
	json_t *doc = J("{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}},\"spec\":{\"x\":[1,2]}}");

	(void)state;
	same(MP(doc, "{\"metadata\":{\"labels\":{\"b\":null,\"c\":\"3\"}},\"spec\":{\"x\":[3]}}"),
	     "{\"metadata\":{\"labels\":{\"a\":\"1\",\"c\":\"3\"}},\"spec\":{\"x\":[3]}}");
	json_decref(doc);
}

static void test_strategic(void **state)
{
	json_t *doc = J("{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i1\",\"ports\":[{\"containerPort\":80}]},"
			"{\"name\":\"b\",\"image\":\"i2\"}],\"tolerations\":[{\"key\":\"x\"}],"
			"\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":1}}},"
			"\"metadata\":{\"finalizers\":[\"f1\"]}}");

	(void)state;
	/* a container merged by name, another deleted, a list without a key replaced */
	same(SP(doc, "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i3\"},"
				    "{\"name\":\"b\",\"$patch\":\"delete\"}],\"tolerations\":[{\"key\":\"y\"}]}}"),
	     "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i3\",\"ports\":[{\"containerPort\":80}]}],"
	     "\"tolerations\":[{\"key\":\"y\"}],\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":1}}},"
	     "\"metadata\":{\"finalizers\":[\"f1\"]}}");
	/* a new container placed by $setElementOrder; $retainKeys drops rollingUpdate */
	same(SP(doc, "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"c\"},{\"name\":\"a\"},{\"name\":\"b\"}],"
				    "\"containers\":[{\"name\":\"c\",\"image\":\"i4\"}],"
				    "\"strategy\":{\"$retainKeys\":[\"type\"],\"type\":\"Recreate\"}},"
				    "\"metadata\":{\"finalizers\":[\"f2\"]}}"),
	     "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i4\"},{\"name\":\"a\",\"image\":\"i1\",\"ports\":[{\"containerPort\":80}]},"
	     "{\"name\":\"b\",\"image\":\"i2\"}],\"tolerations\":[{\"key\":\"x\"}],\"strategy\":{\"type\":\"Recreate\"}},"
	     "\"metadata\":{\"finalizers\":[\"f1\",\"f2\"]}}");
	/* $patch: replace on a map; $deleteFromPrimitiveList */
	same(SP(doc, "{\"spec\":{\"$patch\":\"replace\",\"replicas\":2},"
				    "\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"f1\"]}}"),
	     "{\"spec\":{\"replicas\":2},\"metadata\":{\"finalizers\":[]}}");
	/* an item without its merge key is refused */
	assert_null(SP(doc, "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}"));
	assert_non_null(strstr(err, "merge key"));
	json_decref(doc);
}

static void test_json_patch(void **state)
{
	json_t *doc = J("{\"a\":{\"b\":[1,2]},\"c\":1}");

	(void)state;
	same(JP(doc, "[{\"op\":\"add\",\"path\":\"/a/b/1\",\"value\":9},{\"op\":\"remove\",\"path\":\"/c\"},"
			       "{\"op\":\"replace\",\"path\":\"/a/b/0\",\"value\":0},{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/d\"},"
			       "{\"op\":\"test\",\"path\":\"/d/b/1\",\"value\":9}]"),
	     "{\"a\":{\"b\":[0,9,2]},\"d\":{\"b\":[0,9,2]}}");
	assert_null(JP(doc, "[{\"op\":\"test\",\"path\":\"/c\",\"value\":2}]"));
	assert_null(JP(doc, "[{\"op\":\"replace\",\"path\":\"/nope\",\"value\":2}]"));
	json_decref(doc);
}

static void test_selectors(void **state)
{
	json_t *l = J("{\"app\":\"helloworld\",\"version\":\"v1\"}");

	(void)state;
	assert_true(label_selector_match("app=helloworld,version==v1", l));
	assert_true(label_selector_match("version in (v1, v2),app", l));
	assert_true(label_selector_match("version notin (v2,v3),!tier", l));
	assert_false(label_selector_match("version!=v1", l));
	assert_false(label_selector_match("version in (v2,v3)", l));
	assert_false(label_selector_match("tier", l));
	assert_true(label_selector_match("", l));
	json_decref(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_strategic),
		cmocka_unit_test(test_json_patch),
		cmocka_unit_test(test_selectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
