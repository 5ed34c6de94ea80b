/* Tests for smtp_buf.c: the bounded buffer (STYLE.md 4). */
#include "smtp_test.h"

static void
t_append_consume(void **state)
{
	struct smtp_buf b;
	smtp_buf_init(&b, 64);
	assert_int_equal(smtp_buf_len(&b), 0);
	assert_int_equal(smtp_buf_append(&b, "hello", 5), 0);
	assert_int_equal(smtp_buf_puts(&b, " world"), 0);
	assert_int_equal(smtp_buf_len(&b), 11);
	assert_memory_equal(smtp_buf_data(&b), "hello world", 11);
	smtp_buf_consume(&b, 6);
	assert_memory_equal(smtp_buf_data(&b), "world", 5);
	smtp_buf_consume(&b, 5);
	assert_int_equal(smtp_buf_len(&b), 0);
	smtp_buf_free(&b);
}

static void
t_ceiling(void **state)
{
	struct smtp_buf b;
	smtp_buf_init(&b, 10);
	assert_int_equal(smtp_buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(smtp_buf_append(&b, "x", 1), SMTP_ERR_FULL);
	assert_int_equal(smtp_buf_len(&b), 10);
	smtp_buf_consume(&b, 4);
	assert_int_equal(smtp_buf_avail(&b), 4);
	assert_int_equal(smtp_buf_append(&b, "abcd", 4), 0);
	assert_memory_equal(smtp_buf_data(&b), "456789abcd", 10);
	assert_int_equal(smtp_buf_append(&b, "z", 1), SMTP_ERR_FULL);
	smtp_buf_free(&b);
}

static void
t_printf(void **state)
{
	struct smtp_buf b;
	smtp_buf_init(&b, 4096);
	assert_int_equal(smtp_buf_printf(&b, "%d %s", 250, "ok"), 0);
	assert_int_equal(smtp_buf_len(&b), 6);
	assert_memory_equal(smtp_buf_data(&b), "250 ok", 6);
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(smtp_buf_printf(&b, "%s", big), 0);
	assert_int_equal(smtp_buf_len(&b), 6 + 1999);
	assert_int_equal(smtp_buf_printf(&b, "%s%s", big, big), SMTP_ERR_FULL);
	smtp_buf_free(&b);
}

static void
t_reserve_commit(void **state)
{
	struct smtp_buf b;
	smtp_buf_init(&b, 1000);
	uint8_t *wp;
	assert_int_equal(smtp_buf_reserve(&b, 600, &wp), 0);
	memset(wp, 'x', 300);
	smtp_buf_commit(&b, 300);
	assert_int_equal(smtp_buf_len(&b), 300);
	assert_int_equal(smtp_buf_reserve(&b, 701, &wp), SMTP_ERR_FULL);
	assert_int_equal(smtp_buf_reserve(&b, 700, &wp), 0);
	smtp_buf_free(&b);
}

static void
t_compaction(void **state)
{
	/* Repeated append/consume never grows past the ceiling. */
	struct smtp_buf b;
	smtp_buf_init(&b, 300);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(smtp_buf_append(&b, "0123456789abcdefghij",
		                     20),
		    0);
		smtp_buf_consume(&b, 15);
		assert_true(b.cap <= 300);
		if (smtp_buf_len(&b) > 250)
			smtp_buf_consume(&b, smtp_buf_len(&b));
	}
	smtp_buf_free(&b);
}

static void
t_reset_free_null(void **state)
{
	struct smtp_buf b;
	smtp_buf_init(&b, 16);
	assert_int_equal(smtp_buf_append(&b, "abc", 3), 0);
	smtp_buf_reset(&b);
	assert_int_equal(smtp_buf_len(&b), 0);
	assert_int_equal(smtp_buf_append(&b, "", 0), 0);
	smtp_buf_free(&b);
	smtp_buf_free(NULL);
}

static void
t_strerror(void **state)
{
	assert_string_equal(smtp_strerror(SMTP_ERR_FULL), "buffer full");
	assert_string_equal(smtp_strerror(SMTP_ERR_BARE_NL), "bare CR or LF");
	assert_string_equal(smtp_strerror(-999), "unknown error");
	assert_string_equal(smtp_stage_name(SMTP_STAGE_DOT), "dot");
	assert_string_equal(smtp_stage_name(SMTP_STAGE_STARTTLS), "starttls");
	assert_string_equal(smtp_reason_name(SMTP_REASON_STARTTLS_NOT_OFFERED),
	    "starttls-not-offered");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_append_consume),
		cmocka_unit_test(t_ceiling),
		cmocka_unit_test(t_printf),
		cmocka_unit_test(t_reserve_commit),
		cmocka_unit_test(t_compaction),
		cmocka_unit_test(t_reset_free_null),
		cmocka_unit_test(t_strerror),
	};
	return cmocka_run_group_tests_name("smtp_buf", tests, NULL, NULL);
}
