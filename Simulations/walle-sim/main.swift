print("walle-sim")
