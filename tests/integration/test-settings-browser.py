import bmtest; bmtest.skip_all("not written yet")
