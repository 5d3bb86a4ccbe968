/* A shared object without bm_module_entry: the loader must refuse it. */
__attribute__((visibility("default"))) int nosym_answer(void);

int
nosym_answer(void)
{
	return 42;
}
